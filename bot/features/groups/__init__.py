"""Groups: the bot records what it can see (bots cannot read a chat's history: the log is all there is),
transcribes the group's voice notes in the background, and speaks summaries on /summary and daily /digest."""
