"""Synchronous code: one blocking client shared by the threads of a worker or a web server.

Shows: ``avaturn_async.sync.AvaturnClient`` made once per process (as a Django
module or a Celery worker would hold it), called from many threads at once, with
the async client's methods and errors, and ``job.wait(timeout=...)`` blocking the
calling thread. The tasks here are plain functions run by a thread pool, the way
a Celery worker with ``--pool threads`` or a WSGI server runs them.

Run it against the local emulator (no key, no network)::

    avaturn emulator --port 8080 --processing-delay 0.5 &
    export AVATURN_BASE_URL=http://127.0.0.1:8080 AVATURN_API_KEY=emulator-key
    python examples/sync_tasks.py

or against Avaturn with your API key (it uploads the SDK's sample drawings, which
the real service would not make a meaningful avatar from).
"""

from __future__ import annotations

import atexit
from concurrent.futures import ThreadPoolExecutor

from avaturn_async import JobTimeoutError, NotFoundError
from avaturn_async.samples import sample_photo_paths
from avaturn_async.sync import AvaturnClient

# One client per process: its connection pool serves every thread. Closed at exit.
avaturn = AvaturnClient()  # AVATURN_API_KEY, AVATURN_BASE_URL
atexit.register(avaturn.close)


def onboard_person(name: str) -> str:
    """A task: a user and an avatar for one person, waited for at most two minutes."""
    frontal, side_1, side_2 = sample_photo_paths()
    user = avaturn.users.create()
    job = avaturn.avatars.create_from_photos(
        user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
    )
    try:
        ready = job.wait(timeout=120)
    except JobTimeoutError:
        return f"{name}: avatar {job.avatar_id} still processing; track it later"
    return f"{name}: avatar {ready.avatar_id} {ready.status}"


def avatars_view(user_id: str) -> tuple[int, list[str]]:
    """A view: the ids of a user's ready avatars, 404 for an unknown user."""
    try:
        return 200, [avatar.id for avatar in avaturn.avatars.list(user_id)]
    except NotFoundError:
        return 404, []


def main() -> None:
    people = ["ada", "grace", "alan", "edsger"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for line in pool.map(onboard_person, people):
            print(line)
    print(f"unknown user: {avatars_view('no-such-user')[0]}")


if __name__ == "__main__":
    main()
