"""Generated channel passwords."""

from __future__ import annotations

from pushgod.model.channels import check_password, generate_password


def test_generated_passwords_are_letters_and_digits() -> None:
    """token_urlsafe put '-' first about once in 64, and `pushgod send --password -x...`
    then failed to parse (a flaky CLI test)."""
    for _ in range(2000):
        password = generate_password()
        assert password.isascii() and password.isalnum()
        assert check_password(password) == password
    assert len({generate_password() for _ in range(100)}) == 100
