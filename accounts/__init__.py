"""Sign up, sign in (with its brute-force limits), sign out, password change and the account page with its
API tokens: Django's auth views and forms, lightly dressed, with django-axes and django-rest-knox."""
