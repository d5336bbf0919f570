"""Local stand-ins for outside services, started by the tests on 127.0.0.1."""
