"""The Hugging Face Space's entry (README front matter `app_file`): a Space installs requirements.txt
and runs this file from the repository root, so `skipsr` and `app` import from the tree as they are."""

from app.app import main

main()
