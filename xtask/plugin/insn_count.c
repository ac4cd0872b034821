/* Exact dynamic instruction counts per guest instruction address, for `cargo xtask bench-insn`.
 * Writes "<segment> <hex vaddr> <count>" lines (executed addresses only) to out=PATH.
 *
 * Segments are delimited by marker syscalls: with marker=N,marker_arg=A every syscall N whose first
 * argument is A starts a new segment (`hartlm bench` brackets each timed run with
 * clock_gettime(CLOCK_MONOTONIC), so marker=113,marker_arg=1 puts each timed run in its own odd
 * segment, and loading, hashing and printing fall outside it).
 *
 * Counting is per translated block: each execution adds one to the block's counter; at each
 * marker and at exit every instruction of every block is credited with its count, which is then
 * reset. Blocks re-translated at one address are summed, so qemu's translation cache does not
 * change the result.
 */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

typedef struct {
    uint64_t executions;
    size_t n_insns;
    uint64_t vaddrs[];
} Block;

static GPtrArray *blocks;
static GMutex lock;
static char *out_path;
static int64_t marker_syscall = -1;
static uint64_t marker_arg;
/* One table (vaddr -> count) per segment. */
static GPtrArray *segments;

static void on_exec(unsigned int vcpu_index, void *udata)
{
    Block *b = udata;
    __atomic_fetch_add(&b->executions, 1, __ATOMIC_RELAXED);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    Block *b = g_malloc0(sizeof(Block) + n * sizeof(uint64_t));
    b->n_insns = n;
    for (size_t i = 0; i < n; i++) {
        b->vaddrs[i] = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, i));
    }
    g_mutex_lock(&lock);
    g_ptr_array_add(blocks, b);
    g_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static GHashTable *new_segment(void)
{
    GHashTable *t = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    g_ptr_array_add(segments, t);
    return t;
}

/* Credits the counts since the last flush to the current (last) segment. Caller holds `lock`. */
static void flush(void)
{
    GHashTable *per_addr = g_ptr_array_index(segments, segments->len - 1);
    for (guint i = 0; i < blocks->len; i++) {
        Block *b = g_ptr_array_index(blocks, i);
        uint64_t n = __atomic_exchange_n(&b->executions, 0, __ATOMIC_RELAXED);
        if (n == 0) {
            continue;
        }
        for (size_t j = 0; j < b->n_insns; j++) {
            uint64_t *count = g_hash_table_lookup(per_addr, &b->vaddrs[j]);
            if (count == NULL) {
                uint64_t *key = g_new(uint64_t, 1);
                *key = b->vaddrs[j];
                count = g_new0(uint64_t, 1);
                g_hash_table_insert(per_addr, key, count);
            }
            *count += n;
        }
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num != marker_syscall || a1 != marker_arg) {
        return;
    }
    g_mutex_lock(&lock);
    flush();
    new_segment();
    g_mutex_unlock(&lock);
}

static void write_profile(qemu_plugin_id_t id, void *p)
{
    g_mutex_lock(&lock);
    flush();
    /* Write to a temporary name and rename, so a crash never leaves a partial profile. */
    char *tmp = g_strdup_printf("%s.tmp", out_path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "insn_count: cannot write %s\n", tmp);
        exit(1);
    }
    for (guint s = 0; s < segments->len; s++) {
        GHashTableIter it;
        gpointer key, value;
        g_hash_table_iter_init(&it, g_ptr_array_index(segments, s));
        while (g_hash_table_iter_next(&it, &key, &value)) {
            fprintf(f, "%u %" PRIx64 " %" PRIu64 "\n", s, *(uint64_t *)key, *(uint64_t *)value);
        }
    }
    if (fclose(f) != 0 || rename(tmp, out_path) != 0) {
        fprintf(stderr, "insn_count: cannot write %s\n", out_path);
        exit(1);
    }
    g_free(tmp);
    g_mutex_unlock(&lock);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (g_str_has_prefix(argv[i], "out=")) {
            out_path = g_strdup(argv[i] + 4);
        } else if (g_str_has_prefix(argv[i], "marker=")) {
            marker_syscall = g_ascii_strtoll(argv[i] + 7, NULL, 10);
        } else if (g_str_has_prefix(argv[i], "marker_arg=")) {
            marker_arg = g_ascii_strtoull(argv[i] + 11, NULL, 10);
        } else {
            fprintf(stderr, "insn_count: unknown option %s (expected out=PATH, marker=N, marker_arg=A)\n",
                    argv[i]);
            return -1;
        }
    }
    if (out_path == NULL) {
        fprintf(stderr, "insn_count: missing out=PATH\n");
        return -1;
    }
    blocks = g_ptr_array_new();
    segments = g_ptr_array_new();
    new_segment();
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    if (marker_syscall >= 0) {
        qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    }
    qemu_plugin_register_atexit_cb(id, write_profile, NULL);
    return 0;
}
