"""`mmp init`: a new project written from `template/`, with small real datasets (`sample_data`)."""
