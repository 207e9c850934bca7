"""People auth: passwords, JWTs, login and the current-user dependency."""
