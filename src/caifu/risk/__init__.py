"""Risk news (舆情): documents in, checked, folded into stories (issue 15, point 1).

``documents`` reads and checks one input record; ``stories`` says when two documents are the
same story. Linking stories to companies and classifying their events build on these later.
"""
