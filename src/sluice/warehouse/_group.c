/*
 * sluice.warehouse._group: a piece of the log sorted into the columnar planner's groups, in C.
 *
 * intake.py decides which events a chunk keeps and which group each joins (source, call,
 * track name) as `columnar.Chunk.add` does. In Python that costs a loop over every event
 * (~1.8 s of CPU per 1,000,000 events, a fifth of the lake's load); here it is two passes:
 *
 * `survey` looks at every event once: its source (numbered), whether its payload mentions
 * "Warehouses" (only those are decoded, in Python, for `integrations.Warehouses`) and whether
 * it is a track without a name (Python asks the payload). The payload scan runs without the
 * GIL.
 *
 * `group` then drops what Python decided to drop, and the repeated messageIds (per schema,
 * as `Chunk.add`: an id the schema already had, in the chunk or earlier in the piece), numbers
 * the groups in order of first appearance and puts the kept events in group order (log order
 * within a group: a counting sort), as Arrow buffers (seq, messageId) and a tuple of the
 * log's payloads a group, not copied.
 *
 * This file is the module: its functions' docs and method table. _group_survey.c holds
 * `survey` and `mentions` (the payloads' scan for "Warehouses"), _group_repeated.c the
 * repeated messageIds (`group`'s drop of them, and `repeated` over a column chunk's buffers),
 * _group_order.c `group` itself (the groups numbered, the counting sort, the Arrow buffers);
 * _group.h what they share.
 */
#include "_group.h"

PyDoc_STRVAR(survey_doc,
"survey(events) -> (sources, source_of, mentions, nameless)\n\n"
"The distinct source ids (in order of first appearance), each event's index in them (int32\n"
"buffer), and the indices of the events whose payload holds b'Warehouses' and of the tracks\n"
"without an event name (falsy `event`).");

PyDoc_STRVAR(mentions_doc,
"mentions(offsets, data) -> list[int]\n\n"
"The indices of the texts of a large binary array (its int64 `offsets`, one more than texts,\n"
"and `data` buffers) that hold b'Warehouses' (as `survey` finds them in payloads).");

PyDoc_STRVAR(repeated_doc,
"repeated(schema, offsets, data) -> bytes\n\n"
"For each event, 1 where an earlier event of the same schema has the same messageId, else 0.\n"
"`schema`: an int32 buffer, each event's schema code (-1: the event is not counted, neither\n"
"repeating nor repeated); `offsets` (int64, one more than events) and `data`: the messageIds.\n"
"The first of each (schema, messageId) in log order is the one kept, as in `group`.");

PyDoc_STRVAR(group_doc,
"group(events, source_of, keep, schema_of, seen, drop, names)\n"
"    -> (skipped, duplicates, aside, keys, counts, seq, offsets, data, payloads)\n\n"
"Drops the events of sources not in `keep` (one byte a source: 1 kept) and those at the\n"
"indices `drop`, then the repeated messageIds (`seen`: a set per schema, which grows;\n"
"`schema_of`: each source's schema index), and sorts the others into groups (source, call,\n"
"track name; `names`: index -> name for nameless tracks, or None). Returns how many were\n"
"skipped by source and repeated, the dropped events (log order), the groups' keys and sizes\n"
"(order of first appearance), and the kept events in group order: seq (int64) and messageId\n"
"(int32 offsets, UTF-8 data) buffers, and the payloads (a tuple a group).");

static PyMethodDef methods[] = {
    {"survey", group_survey, METH_O, survey_doc},
    {"group", group_events, METH_VARARGS, group_doc},
    {"mentions", group_mentions, METH_VARARGS, mentions_doc},
    {"repeated", group_repeated, METH_VARARGS, repeated_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_group",
    "A piece of the log sorted into the columnar planner's groups (see sluice.warehouse.intake).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__group(void) { return PyModule_Create(&module); }
