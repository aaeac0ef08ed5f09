"""The web entry for gunicorn: `gunicorn hotline.wsgi:app`."""

import gc

from hotline import create_app

app = create_app()

# The app's own objects (modules, routes, the directory, the classifier's tables) live as long
# as the worker: about 190,000 of them, which every full collection walked again, holding the
# GIL for 70-110 ms while each of the worker's requests waited (a p99 of 150-190 ms in
# `bench/webhooks.py`). Frozen, collections look only at what requests allocate.
gc.collect()
gc.freeze()
