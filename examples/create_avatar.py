"""Create an avatar from three photos and wait until it is ready.

Shows: one Avaturn user per person of yours, ``create_from_photos`` (photos are
checked, then streamed from disk), and ``job.wait()`` under a deadline. Without a
webhook receiver the job polls List User Avatars with growing intervals.

Run it against the local emulator (no key, no network)::

    avaturn emulator --port 8080 &
    export AVATURN_BASE_URL=http://127.0.0.1:8080 AVATURN_API_KEY=emulator-key
    python examples/create_avatar.py

or against Avaturn with your API key (from the Avaturn developer console) and three
photos of a person (frontal, then the two sides)::

    AVATURN_API_KEY=... python examples/create_avatar.py front.jpg left.jpg right.jpg

Without photo arguments it uploads the SDK's sample drawings: the emulator accepts
them, the real service would not make a meaningful avatar from them.
"""

from __future__ import annotations

import sys

import anyio

from avaturn_async import AvaturnClient
from avaturn_async.samples import sample_photo_paths


async def main(photos: list[str]) -> None:
    frontal, side_1, side_2 = photos or [str(path) for path in sample_photo_paths()]
    async with AvaturnClient() as client:  # AVATURN_API_KEY, AVATURN_BASE_URL
        user = await client.users.create()  # keep user.id: one per person of yours
        print(f"user {user.id}")
        job = await client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
        )
        print(f"avatar {job.avatar_id} uploaded; waiting until it is ready")
        with anyio.fail_after(600):  # Avaturn takes a minute or two
            ready = await job.wait()
        print(f"avatar {ready.avatar_id} is {ready.status}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
