"""The containers Parley opens, shared by both decoding paths: the codec workers (codec.py) and the ffmpeg
command line (ffmpeg_cli.py). Its own module so the bot can name them without loading FFmpeg's libraries,
which only the workers need."""

DEMUXERS = "ogg,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mp3,aac,flac,wav,w64,aiff,caf,amr,amrnb,amrwb"
"""The containers phones, browsers and apps send audio in. Nothing else is even probed: playlists (HLS,
concat) that name other files, image sequences and network protocols stay out of reach."""
