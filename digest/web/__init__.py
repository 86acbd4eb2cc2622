"""The reader pages of `digest serve`, on Starlette: subscribe, confirm, manage, unsubscribe,
live previews, and the published archive's files.

    GET  /subscribe                  the form: address, keywords, time zone, time, frequency
    POST /subscribe                  double opt-in: mails a confirmation link (CSRF, limits)
    GET  /subscribe/preview?keywords=...   JSON: what today's digest would hold
    GET  /preview?keywords=a,b[&exclude=c][&format=html|markdown|text][&limit=N]
    GET  /confirm?token=T            one button; POST confirms
    GET  /unsubscribe?token=T        one button; POST (RFC 8058 one-click too) unsubscribes
    GET  /manage?token=T             the reader's profiles, settings, last digests; POST edits
    GET  /rate?token=T&paper=ID&vote=like|dislike|clear   one button; POST records
    GET  /_web/<file>                the pages' stylesheet and script
    GET  /<path>                     files of the published archive (site/ by default)

`make_app` builds the application; digest.serve runs it on uvicorn.
"""

from digest.web.app import make_app

__all__ = ["make_app"]
