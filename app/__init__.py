"""Xianying Studio application: settings, database, job service, queue, media, UI and API."""
