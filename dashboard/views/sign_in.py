"""Sign in: the only page a visitor sees before signing in (no model, data or page names)."""

from dashboard import access_pages

access_pages.sign_in_page()
