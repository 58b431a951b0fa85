"""Deploy-time tools (azd's hooks run them from the project root); the package's allowlist leaves them out."""
