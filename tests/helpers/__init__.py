"""Test helpers: processes (fresh interpreters), torch's stderr format, in-process bridges."""
