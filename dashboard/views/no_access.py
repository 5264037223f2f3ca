"""No access: what a signed-in user with no role sees instead of every other page."""

from dashboard import access_pages

access_pages.no_access_page()
