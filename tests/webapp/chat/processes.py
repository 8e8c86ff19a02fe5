"""Set-up for the two-process chat test, run in a subprocess on that test's own database: a user signed in
(a session like the sign-in page makes), an assistant at the given URL, and a conversation. Prints them as JSON."""

from __future__ import annotations

import json
import os
import sys


def main(base_url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.core.cache import cache

    from webapp.accounts.services import session_sign_in, user_create
    from webapp.chat.models import ChatSession
    from webapp.chat.services import rate_limit_keys
    from webapp.endpoints.models import ModelEndpoint

    user = user_create(username="two-process-learner", role="annotator")
    cache.delete_many(rate_limit_keys(user.pk))  # Redis outlives the database: no allowance left from an earlier run
    endpoint = ModelEndpoint.objects.create(name="fake assistant", base_url=base_url, model_name="fake-model",
                                            as_assistant=True, max_concurrency=16)
    chat = ChatSession.objects.create(owner=user, endpoint=endpoint, endpoint_name=endpoint.name)
    print(json.dumps({"cookie": session_sign_in(user), "chat": chat.pk}))


if __name__ == "__main__":
    main(sys.argv[1])
