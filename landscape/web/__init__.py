"""The web site and JSON API of Landscape (`landscape serve`, `landscape export --format site`)."""
