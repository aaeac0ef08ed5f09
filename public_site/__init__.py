"""The public site: the case lookup, and the disclosure page with its charts and downloads.

Nothing here shows personal data. Chinese is the default; English is one click away.
(Not named `public`: that name belongs to a module the test SMTP server needs, `atpublic`'s,
which a top-level package of ours would shadow.)
"""
