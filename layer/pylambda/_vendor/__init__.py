"""Third-party code the runtime ships inside itself.

``build.py`` unpacks the pinned wheels listed in ``vendor.txt`` here. Keeping
them under ``pylambda._vendor`` rather than on ``sys.path`` means a function
that bundles its own, different urllib3 (botocore often pins one) never
collides with the runtime's copy.
"""
