"""The web entry for gunicorn: `gunicorn hotline.wsgi:app`."""

import gc

from hotline import create_app

app = create_app()

# The app's own objects (modules, routes, the directory, the classifier's tables) live as long
# as the worker, and every full collection would walk them all again, holding the GIL while
# each of the worker's requests waited. Frozen, collections look only at what requests make.
gc.collect()
gc.freeze()
