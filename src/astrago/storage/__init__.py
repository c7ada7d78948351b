"""The files behind volumes: layout on disk, safe paths, uploads' part files, archives."""
