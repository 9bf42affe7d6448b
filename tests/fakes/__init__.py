"""Test doubles shared by tests: fake sysfs trees, stub vendor libraries."""
