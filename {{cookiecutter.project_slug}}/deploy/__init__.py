"""Deploy-time tools (azd's hooks run them from the project root); .funcignore keeps them out of the app."""
