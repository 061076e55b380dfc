"""Access to the GMN archive: the source protocol (:mod:`.source`), a local directory
(:mod:`.local`) or an SFTP server (:mod:`.sftp`, with :mod:`.host_keys` and
:mod:`.channel_buffer`), opened from the config by :mod:`.connect`; resumable fetches over one
connection (:mod:`.fetch`) and over many (:mod:`.fetch_pool`); the list of files to fetch
(:mod:`.download_manifest`)."""
