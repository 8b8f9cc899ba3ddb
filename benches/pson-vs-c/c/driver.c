/*
 * Driver for the official standalone C PSON codec (pson_encode.h / pson_decode.h from
 * thinger-io/iotmp-benchmarks, encoding/pson/main), written for this bench: the same work
 * as that suite's main.c, with the inputs passed in (so nothing is constant-folded), every
 * return code checked, and every decoded value folded into a checksum (so nothing is
 * optimised away). The Rust side of the bench does the same work with thinger-core.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "pson_encode.h"
#include "pson_decode.h"

/* {"temperature": t, "humidity": h, "pressure": p, "label": label}, as main.c writes it
 * (the temperature through pson_encode_float). Returns the size, 0 when cap is too small. */
size_t c_encode_payload(uint8_t *buf, size_t cap, float temperature, uint64_t humidity,
                        uint64_t pressure, const char *label, size_t label_len) {
    pson_encoder_t enc;
    pson_encoder_init(&enc, buf, cap);
    if (pson_encode_map(&enc, 4) || pson_encode_str(&enc, "temperature") ||
        pson_encode_float(&enc, temperature) || pson_encode_str(&enc, "humidity") ||
        pson_encode_uint(&enc, humidity) || pson_encode_str(&enc, "pressure") ||
        pson_encode_uint(&enc, pressure) || pson_encode_str(&enc, "label") ||
        pson_encode_string(&enc, label, label_len)) {
        return 0;
    }
    return pson_encoded_size(&enc);
}

/* A map of n string keys to unsigned integers. */
size_t c_encode_map(uint8_t *buf, size_t cap, const char *const *keys, const size_t *key_lens,
                    const uint64_t *values, size_t n) {
    pson_encoder_t enc;
    pson_encoder_init(&enc, buf, cap);
    if (pson_encode_map(&enc, n)) return 0;
    for (size_t i = 0; i < n; i++) {
        if (pson_encode_string(&enc, keys[i], key_lens[i]) || pson_encode_uint(&enc, values[i])) {
            return 0;
        }
    }
    return pson_encoded_size(&enc);
}

/* An array of n unsigned integers. */
size_t c_encode_array(uint8_t *buf, size_t cap, const uint64_t *values, size_t n) {
    pson_encoder_t enc;
    pson_encoder_init(&enc, buf, cap);
    if (pson_encode_array(&enc, n)) return 0;
    for (size_t i = 0; i < n; i++) {
        if (pson_encode_uint(&enc, values[i])) return 0;
    }
    return pson_encoded_size(&enc);
}

/* What a reader gets out of one scalar, as one number (same rule as the Rust side). */
static inline uint64_t fold(const pson_value_t *v) {
    switch (v->type) {
    case PSON_TYPE_UINT: return v->val.u;
    case PSON_TYPE_INT: return (uint64_t)v->val.i;
    case PSON_TYPE_FLOAT: { uint32_t b; memcpy(&b, &v->val.f, 4); return b; }
    case PSON_TYPE_DOUBLE: { uint64_t b; memcpy(&b, &v->val.d, 8); return b; }
    case PSON_TYPE_BOOL: return (uint64_t)v->val.b;
    case PSON_TYPE_STRING:
    case PSON_TYPE_BYTES: return (uint64_t)v->val.str.len;
    case PSON_TYPE_MAP:
    case PSON_TYPE_ARRAY: return v->val.count;
    default: return 0;
    }
}

/* main.c's decode_silent, checking that keys are strings (as decode_test_data does) and
 * folding every key and value into *sum. A flat map: the payload and the map rows. */
int c_decode_map_walk(const uint8_t *buf, size_t len, uint64_t *sum) {
    pson_decoder_t dec;
    pson_decoder_init(&dec, buf, len);
    pson_value_t val;
    if (pson_decode_value(&dec, &val) != 0 || val.type != PSON_TYPE_MAP) return -1;
    uint64_t count = val.val.count, acc = 0;
    for (uint64_t i = 0; i < count; i++) {
        pson_value_t key, v;
        if (pson_decode_value(&dec, &key) != 0 || key.type != PSON_TYPE_STRING) return -1;
        if (pson_decode_value(&dec, &v) != 0) return -1;
        acc += key.val.str.len + fold(&v);
    }
    *sum = acc;
    return 0;
}

/* The same for a flat array. */
int c_decode_array_walk(const uint8_t *buf, size_t len, uint64_t *sum) {
    pson_decoder_t dec;
    pson_decoder_init(&dec, buf, len);
    pson_value_t val;
    if (pson_decode_value(&dec, &val) != 0 || val.type != PSON_TYPE_ARRAY) return -1;
    uint64_t count = val.val.count, acc = 0;
    for (uint64_t i = 0; i < count; i++) {
        pson_value_t v;
        if (pson_decode_value(&dec, &v) != 0) return -1;
        acc += fold(&v);
    }
    *sum = acc;
    return 0;
}
