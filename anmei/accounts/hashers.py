"""Password hashing: Argon2id with OWASP's first recommended parameters (m=19 MiB, t=2, p=1).

Django's own Argon2PasswordHasher defaults to 100 MiB and 8 lanes: on a 2-core web box that is
memory-heavy per concurrent login for no gain. The algorithm name stays `argon2`, so hashes made
with other parameters still verify and are re-hashed to these on the next login (must_update).
PBKDF2 stays in PASSWORD_HASHERS after this one only to verify and upgrade old hashes.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    time_cost = settings.ARGON2_TIME_COST
    memory_cost = settings.ARGON2_MEMORY_KIB
    parallelism = settings.ARGON2_PARALLELISM
