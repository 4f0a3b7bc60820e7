# Build targets for `sam build` (template.yaml: BuildMethod makefile, ContextPath .).
# SAM runs each target with ARTIFACTS_DIR set to the resource's output folder.
# SAM passes nothing else to make, not even --parameter-overrides: the layer's
# architecture (the template's Architecture parameter) is read from the build
# graph SAM writes before building, build.toml beside the build folder.
# Everything delegates to build.py, so a layer built by SAM is the one
# `python build.py` builds and the tests exercise.
ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3

build-PythonRuntimeLayer:
	$(PYTHON) $(ROOT)build.py layer --into "$(ARTIFACTS_DIR)" --sam-build-graph "$(ARTIFACTS_DIR)/../../build.toml"

build-EchoFunction:
	$(PYTHON) $(ROOT)build.py function echo --into "$(ARTIFACTS_DIR)"

build-FailFunction:
	$(PYTHON) $(ROOT)build.py function fail --into "$(ARTIFACTS_DIR)"

build-BatchFunction:
	$(PYTHON) $(ROOT)build.py function batch --into "$(ARTIFACTS_DIR)"

build-GreetFunction:
	$(PYTHON) $(ROOT)build.py function greet --into "$(ARTIFACTS_DIR)"

build-StreamFunction:
	$(PYTHON) $(ROOT)build.py function stream --into "$(ARTIFACTS_DIR)"

build-OrderFunction:
	$(PYTHON) $(ROOT)build.py function order --into "$(ARTIFACTS_DIR)"

# A dependency layer: wheels for the Python the runtime layer bundles (LAYER_PYTHON)
# and the template's architecture, laid out in python/lib/python3.X/site-packages.
build-OrderDependencies:
	$(PYTHON) $(ROOT)build.py deps $(ROOT)functions/order/requirements.txt --into "$(ARTIFACTS_DIR)" \
		--sam-build-graph "$(ARTIFACTS_DIR)/../../build.toml"

# Web apps served natively, each with its framework in a dependency layer.
build-WebApiDependencies:
	$(PYTHON) $(ROOT)build.py deps $(ROOT)functions/webapi/requirements.txt --into "$(ARTIFACTS_DIR)" \
		--sam-build-graph "$(ARTIFACTS_DIR)/../../build.toml"

build-WebApiFunction:
	$(PYTHON) $(ROOT)build.py function webapi --into "$(ARTIFACTS_DIR)"

build-FlaskDependencies:
	$(PYTHON) $(ROOT)build.py deps $(ROOT)functions/flaskapp/requirements.txt --into "$(ARTIFACTS_DIR)" \
		--sam-build-graph "$(ARTIFACTS_DIR)/../../build.toml"

build-FlaskFunction:
	$(PYTHON) $(ROOT)build.py function flaskapp --into "$(ARTIFACTS_DIR)"

# template-durable.yaml: a durable function, with the SDK (and the boto3 it needs) in its dependency layer.
build-DurableDependencies:
	$(PYTHON) $(ROOT)build.py deps $(ROOT)functions/durable/requirements.txt --into "$(ARTIFACTS_DIR)" \
		--sam-build-graph "$(ARTIFACTS_DIR)/../../build.toml"

build-DurableFunction:
	$(PYTHON) $(ROOT)build.py function durable --into "$(ARTIFACTS_DIR)"
