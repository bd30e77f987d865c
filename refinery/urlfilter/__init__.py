"""URL/domain blocklists (UT1 format) for the `url_filter` stage.

`normalise` turns URLs and list entries into the same comparable keys,
`lists` parses list files (clear errors naming file and line) into compact
hashed sets, `refresh` rebuilds the copies shipped with the project.
"""
