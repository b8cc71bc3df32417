import os

# Tests never download: a model hub is not reachable here. (Helpers such as media.py and models.py
# import by name: pytest puts this folder on the path for test modules that are not in a package.)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
