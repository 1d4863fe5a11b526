"""The concurrency pools steps of several groups share. Every pool holds one step at a time unless the
instance says otherwise (`concurrency.pools.default_limit` in dagster.yaml), so a per-process request budget
is not multiplied by concurrent runs."""

# S3 downloads of the recordings: the copier's own worker pool sets the request rate.
AUDIO_DOWNLOAD_POOL = "audio_download"
# The Gemini project's request budget (GEMINI_RPM) is shared by the audio analysis and the conversation
# categorizer (CONVERSATION_CATEGORIZER=gemini).
GEMINI_POOL = "gemini"
