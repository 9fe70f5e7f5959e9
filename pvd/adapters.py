from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """Accounts are opened by ANCT staff: nobody signs up on their own."""

    def is_open_for_signup(self, request) -> bool:
        return False
