"""End-to-end tests: the real service under gunicorn, wired to fakes on 127.0.0.1."""
