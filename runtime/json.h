/*
 * json.h - a strict JSON reader (RFC 8259) for the seqc runtime.
 *
 * It exists to read safetensors headers, which come from untrusted files, so
 * it accepts exactly RFC 8259 and nothing more: no comments, trailing commas,
 * leading zeros, NaN/Infinity, byte order mark, lone surrogates, invalid UTF-8
 * or raw control characters in strings, and no bytes after the value except
 * whitespace. Duplicate keys within an object are an error. Limits: objects
 * and arrays nest at most RT_JSON_MAX_DEPTH deep, the input is at most the
 * caller's max_len bytes, numbers are at most RT_JSON_MAX_NUMBER_LEN
 * characters and must fit a double. The input is a byte range and need not be
 * NUL-terminated; it is never read outside [text, text + len).
 *
 * The result is an immutable tree in one allocation, freed by rt_json_free.
 * Its strings are copies: the input may be released after parsing.
 *
 * Errors are RT_EFORMAT with a message "NAME: byte B (line L, col C): what
 * was expected", B the 0-based byte offset in the input, L and C 1-based, C
 * counted in bytes.
 */
#ifndef SEQC_RUNTIME_JSON_H
#define SEQC_RUNTIME_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/seqrt.h"

enum {
  RT_JSON_MAX_DEPTH = 64,        /* nested arrays/objects; the 65th is an error */
  RT_JSON_MAX_NUMBER_LEN = 1024, /* characters of one number (bounds strtod time) */
};

typedef enum rt_json_kind {
  RT_JSON_NULL,
  RT_JSON_BOOL,
  RT_JSON_NUMBER,
  RT_JSON_STRING,
  RT_JSON_ARRAY,
  RT_JSON_OBJECT,
} rt_json_kind;

/* One value. Children of an array or object are a singly linked list in
 * document order (object members keep the order of the text). */
typedef struct rt_json rt_json;
struct rt_json {
  rt_json_kind kind;
  bool boolean;          /* BOOL: its value */
  bool is_int;           /* NUMBER written without fraction or exponent that fits int64 */
  int64_t integer;       /* NUMBER with is_int: the exact value */
  double number;         /* NUMBER: the nearest double (never inf or nan) */
  const char *str;       /* STRING: decoded UTF-8; NUMBER: its source text; NUL-terminated */
  size_t len;            /* bytes of str without the terminator (\u0000 may occur inside) */
  size_t count;          /* ARRAY/OBJECT: number of elements or members */
  const rt_json *child;  /* ARRAY/OBJECT: first element or member, NULL when empty */
  const rt_json *next;   /* the next sibling in the parent, NULL for the last */
  const char *key;       /* object member: its decoded key (NUL-terminated); else NULL */
  size_t key_len;
  size_t offset;         /* byte offset in the input of the value (of the key for members) */
};

typedef struct rt_json_doc rt_json_doc;

/* Parses text[0..len) as one JSON text. `name` prefixes error messages (a
 * file name, say). Inputs longer than max_len are rejected before reading.
 * On success *out owns the tree; on failure *out is NULL and the status is
 * RT_EFORMAT (malformed or over a limit), RT_ENOMEM or RT_EINVAL (null
 * arguments). */
rt_status rt_json_parse(const char *name, const char *text, size_t len, size_t max_len,
                        rt_json_doc **out);

/* The root value of a parsed document. */
const rt_json *rt_json_root(const rt_json_doc *doc);

/* Frees the document and every value in it. NULL is allowed. */
void rt_json_free(rt_json_doc *doc);

/* The member of `obj` whose key equals the C string `key`, or NULL (also when
 * obj is not an object). Linear in the number of members. */
const rt_json *rt_json_get(const rt_json *obj, const char *key);

/* A short, printable rendering of s[0..len) for error messages: printable
 * ASCII is kept, other bytes become \xNN, and the text is cut with "..." to
 * fit `cap` bytes (NUL included). Returns out. */
char *rt_json_escape(const char *s, size_t len, char *out, size_t cap);

#endif
