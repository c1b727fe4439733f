"""Labels from annotation tools (COCO, Pascal VOC, CVAT, Label Studio, YOLO, CSV/JSON tables).

One module per format, each a `read` (tool export → `LabelSet`) and a `write` (the inverse, used
to prove round trips); `formats.FORMATS` is the registry; `importer` turns a `LabelSet` into a
checked YOLO data set or ImageFolder.
"""
