"""The web entry for gunicorn: `gunicorn hotline.wsgi:app`."""

import gc

from hotline import create_app
from hotline.wiring import wiring_of

app = create_app()
# The knowledge base's index is built before the first caller needs it (`/ivr/report/check`
# waits only a bounded time for it, and skips the answer when it is not ready).
wiring_of(app).knowledge.build_in_background()

# The app's own objects (modules, routes, the directory, the classifier's tables) live as long
# as the worker, and every full collection would walk them all again, holding the GIL while
# each of the worker's requests waited. Frozen, collections look only at what requests make.
gc.collect()
gc.freeze()
