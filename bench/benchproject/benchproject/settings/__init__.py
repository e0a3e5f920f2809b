"""One settings module per contestant; :mod:`.base` holds what they share."""
