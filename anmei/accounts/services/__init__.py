"""Accounts: users, ways in, tokens and tickets, and the hand-offs they write.

The package splits by concern (users, signup, tokens, handoffs); callers import from
`anmei.accounts.services`.
"""

from anmei.accounts.services.handoffs import (
    ACCOUNT_LOCKOUT_JOB,
    REGISTRATION_JOB,
    account_lockout_hand_off,
    registration_hand_off,
)
from anmei.accounts.services.signup import (
    clinic_signup,
    guest_credentials_set,
    guest_register,
    user_register,
)
from anmei.accounts.services.tokens import (
    WsSession,
    auth_token_issue,
    auth_token_revoke_all,
    user_login,
    ws_session_user,
    ws_ticket_consume,
    ws_ticket_issue,
)
from anmei.accounts.services.users import (
    auth_token_revoke,
    password_check,
    user_access_changed,
    user_create,
    user_password_change,
    user_sockets_close,
    users_deactivate,
    users_tokens_revoke,
)

__all__ = [
    "ACCOUNT_LOCKOUT_JOB",
    "REGISTRATION_JOB",
    "WsSession",
    "account_lockout_hand_off",
    "auth_token_issue",
    "auth_token_revoke",
    "auth_token_revoke_all",
    "clinic_signup",
    "guest_credentials_set",
    "guest_register",
    "password_check",
    "registration_hand_off",
    "user_access_changed",
    "user_create",
    "user_login",
    "user_password_change",
    "user_register",
    "user_sockets_close",
    "users_deactivate",
    "users_tokens_revoke",
    "ws_session_user",
    "ws_ticket_consume",
    "ws_ticket_issue",
]
