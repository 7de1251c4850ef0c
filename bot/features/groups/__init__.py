"""Groups: the bot records what it can see (bots cannot read a chat's history: the log is all there is, plus
what an admin imports from an export), transcribes the group's voice notes in the background, speaks
summaries whose points link to their messages on /summary and daily or weekly /digest, answers questions
about them, and searches the log on /find."""
