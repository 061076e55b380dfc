"""Timelapse videos: which frames to take (:mod:`.frame_selection`), the videos and their
frame-time maps on disk (:mod:`.timelapse_files`), decoding only the GOPs that hold the
frames (:mod:`.frame_decode`), writing them as PNG (:mod:`.frames_to_png`), and encoding
RMS-style timelapses (:mod:`.timelapse_encode`)."""
