"""Identity: passwords, bearer tokens and the calling principal."""
