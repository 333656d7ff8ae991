"""Tests mirror the modules: model, params, views, waiters, HTTP, snapshots, end to end, browser."""
