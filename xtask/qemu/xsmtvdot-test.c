/*
 * Tests of hartlm's qemu patch (xsmtvdot.patch): every vmadot form against a plain C reference
 * of the SpacemiT spec's semantics, with random and extreme operands, and the illegal
 * encodings. Built for riscv64 by `cargo xtask test-ime-qemu`, which runs it under the patched
 * qemu at VLEN 256 and 1024 and, on a CPU without the extension, expects SIGILL.
 *
 * Instructions are assembled here (encoder below, checked against LLVM's MC test vectors) and
 * run from a buffer, so any register choice and any reserved encoding can be tried.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define OPCODE 0x2bu
static unsigned vlenb;
static uint32_t *code;
static sigjmp_buf trap;
static int failures, checks;

/* signs: bit 1 = A signed, bit 0 = B signed (vmadot = 3, vmadotu = 0, us = 1, su = 2). */
static uint32_t enc_base(unsigned dt, unsigned signs, unsigned vd, unsigned vs1, unsigned vs2)
{
    return 1u << 31 | dt << 29 | 1u << 25 | vs2 << 20 | vs1 << 15 | signs << 12 | vd << 7 | OPCODE;
}

static uint32_t enc_slide(unsigned slide, unsigned signs, unsigned vd, unsigned vs1, unsigned vs2)
{
    unsigned s = slide - 1;
    return 1u << 31 | 3u << 29 | 1u << 26 | 1u << 25 | vs2 << 20 | (vs1 | s >> 1) << 15 |
           ((s & 1) << 2 | signs) << 12 | vd << 7 | OPCODE;
}

static void on_sigill(int sig)
{
    (void)sig;
    siglongjmp(trap, 1);
}

/* Runs `insn` with the 32 vector registers loaded from `file` (32 * vlenb bytes) and vtype
 * set to `vtype`; stores them back. Returns 1 if the instruction raised SIGILL. */
static int exec(uint32_t insn, uint8_t *file, unsigned long vtype)
{
    code[0] = insn;
    code[1] = 0x00008067; /* ret */
    __builtin___clear_cache((char *)code, (char *)(code + 2));
    if (sigsetjmp(trap, 1)) {
        return 1;
    }
    unsigned long group = 8ul * vlenb;
    __asm__ volatile(
        "mv t2, %0\n"
        "vl8re8.v v0, (t2)\n add t2, t2, %2\n"
        "vl8re8.v v8, (t2)\n add t2, t2, %2\n"
        "vl8re8.v v16, (t2)\n add t2, t2, %2\n"
        "vl8re8.v v24, (t2)\n"
        "vsetvl t0, zero, %3\n"
        "jalr ra, 0(%1)\n"
        "mv t2, %0\n"
        "vs8r.v v0, (t2)\n add t2, t2, %2\n"
        "vs8r.v v8, (t2)\n add t2, t2, %2\n"
        "vs8r.v v16, (t2)\n add t2, t2, %2\n"
        "vs8r.v v24, (t2)\n"
        :
        : "r"(file), "r"(code), "r"(group), "r"(vtype)
        : "t0", "t2", "ra", "memory");
    return 0;
}

static int32_t element(const uint8_t *reg, unsigned idx, int is_signed, int int4)
{
    if (int4) {
        unsigned nib = (reg[idx / 2] >> ((idx & 1) * 4)) & 0xf;
        return is_signed ? (int32_t)(nib ^ 8) - 8 : (int32_t)nib;
    }
    return is_signed ? (int8_t)reg[idx] : (int32_t)reg[idx];
}

/* The spec's pseudocode (5.1.3, 5.2.3), on a copy of the register file. */
static void reference(uint8_t *file, unsigned vd, unsigned vs1, unsigned vs2, unsigned signs,
                      unsigned slide, int int4)
{
    unsigned lambda = vlenb == 32 ? 2 : 4;
    unsigned k = (int4 ? 8 : 4) * lambda, mn = (int4 ? 2 * vlenb : vlenb) / k;
    const uint8_t *a = file + vs1 * vlenb, *b = file + vs2 * vlenb;
    int32_t *c = (int32_t *)(file + vd * vlenb);
    for (unsigned p = 0; p < mn * mn; p++) {
        unsigned i = (p / mn) * k + slide * k, j = (p % mn) * k;
        uint32_t sum = (uint32_t)c[p];
        for (unsigned q = 0; q < k; q++) {
            sum += (uint32_t)(element(a, i + q, signs & 2, int4) * element(b, j + q, signs & 1, int4));
        }
        c[p] = (int32_t)sum;
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint8_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint8_t)(rng_state >> 24);
}

enum fill { RANDOM, SIGNED_EXTREMES, ALL_255, MIN_ONLY };
static void fill(uint8_t *file, enum fill how)
{
    static const uint8_t extremes[] = {0x7f, 0x80, 0x81, 0x7f, 0x80};
    for (unsigned i = 0; i < 32 * vlenb; i++) {
        switch (how) {
        case RANDOM: file[i] = rnd(); break;
        case SIGNED_EXTREMES: file[i] = extremes[(i + rnd() % 2) % 5]; break;
        case ALL_255: file[i] = 0xff; break;
        case MIN_ONLY: file[i] = 0x80; break;
        }
    }
}

static const unsigned long E8M1 = 0, E8M2 = 1, VILL = 1ul << 63;

static void check_form(const char *name, uint32_t insn, unsigned vd, unsigned vs1, unsigned vs2,
                       unsigned signs, unsigned slide, int int4, enum fill how)
{
    size_t n = 32 * vlenb;
    uint8_t *file = malloc(n), *want = malloc(n);
    fill(file, how);
    /* A random accumulator: the instruction adds to it. */
    for (unsigned i = 0; i < 2 * vlenb; i++) {
        file[vd * vlenb + i] = rnd();
    }
    memcpy(want, file, n);
    reference(want, vd, vs1, vs2, signs, slide, int4);
    checks++;
    if (exec(insn, file, E8M1)) {
        printf("FAIL %s v%u, v%u, v%u: SIGILL on a valid encoding %08x\n", name, vd, vs1, vs2, insn);
        failures++;
    } else if (memcmp(file, want, n) != 0) {
        printf("FAIL %s v%u, v%u, v%u (fill %d): register file differs from the reference\n", name, vd,
               vs1, vs2, how);
        failures++;
    }
    free(file);
    free(want);
}

static void expect_illegal(const char *what, uint32_t insn, unsigned long vtype)
{
    uint8_t *file = calloc(32, vlenb);
    checks++;
    if (!exec(insn, file, vtype)) {
        printf("FAIL illegal case \"%s\" (%08x) executed instead of raising SIGILL\n", what, insn);
        failures++;
    }
    free(file);
}

static const char *const SIGN_NAMES[4] = {"u", "us", "su", ""};

int main(int argc, char **argv)
{
    int int4 = argc > 1 && strcmp(argv[1], "--int4") == 0;
    int expect_sigill = argc > 1 && strcmp(argv[1], "--expect-sigill") == 0;
    __asm__ volatile("csrr %0, vlenb" : "=r"(vlenb));
    code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_sigill;
    sigaction(SIGILL, &sa, NULL);

    if (expect_sigill) {
        uint8_t *file = calloc(32, vlenb);
        int trapped = exec(enc_base(3, 3, 16, 4, 9), file, E8M1);
        printf("%s: smt.vmadot on a CPU without xsmtvdot %s\n", trapped ? "ok" : "FAIL",
               trapped ? "raised SIGILL" : "executed");
        return trapped ? 0 : 1;
    }
    if (vlenb != 32 && vlenb != 128) {
        printf("FAIL: VLEN %u is not an IME profile (256 or 1024)\n", vlenb * 8);
        return 1;
    }

    /* The encoder against LLVM's MC tests (llvm/test/MC/RISCV/xsmtvdot-valid.s). */
    struct { uint32_t got, want; const char *text; } mc[] = {
        {enc_slide(1, 3, 24, 16, 12), 0xe6c83c2b, "smt.vmadot1 v24, v16, v12"},
        {enc_slide(1, 0, 26, 18, 13), 0xe6d90d2b, "smt.vmadot1u v26, v18, v13"},
        {enc_slide(1, 2, 28, 20, 14), 0xe6ea2e2b, "smt.vmadot1su v28, v20, v14"},
        {enc_slide(1, 1, 30, 22, 15), 0xe6fb1f2b, "smt.vmadot1us v30, v22, v15"},
        {enc_slide(2, 3, 0, 24, 4), 0xe64c702b, "smt.vmadot2 v0, v24, v4"},
        {enc_base(3, 1, 22, 3, 11), 0xe2b19b2b, "smt.vmadotus v22, v3, v11"},
    };
    for (size_t i = 0; i < sizeof mc / sizeof mc[0]; i++) {
        checks++;
        if (mc[i].got != mc[i].want) {
            printf("FAIL encoder: %s gives %08x, LLVM %08x\n", mc[i].text, mc[i].got, mc[i].want);
            failures++;
        }
    }

    /* The spec's own A60 example (5.2.6): vmadot, vmadot1, vmadot2 into one accumulator. Its
     * printed intermediate after vmadot1 has 224 at row 0, column 3 (a slip: the pseudocode
     * gives 508); the final values below are the spec's. */
    if (vlenb == 32) {
        static const int8_t feature[48] = {0, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 8,
                                           2, 3, 4, 5, 6, 7, 8, 9, 4, 5, 6, 7, 8, 9, 10, 11,
                                           5, 6, 7, 8, 9, 10, 11, 12, 6, 7, 8, 9, 10, 11, 12, 13};
        static const int8_t weight[32] = {0, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 8,
                                          2, 3, 4, 5, 6, 7, 8, 9, 11, 4, 5, 6, 7, 8, 9, 10};
        static const int32_t want[16] = {504, 612, 720, 852, 616, 756, 896, 1092,
                                         728, 900, 1072, 1332, 840, 1044, 1248, 1572};
        uint8_t *file = calloc(32, vlenb);
        memcpy(file + 0 * vlenb, feature, sizeof feature);
        memcpy(file + 8 * vlenb, weight, sizeof weight);
        int trapped = exec(enc_base(3, 3, 16, 0, 8), file, E8M1) ||
                      exec(enc_slide(1, 3, 16, 0, 8), file, E8M1) ||
                      exec(enc_slide(2, 3, 16, 0, 8), file, E8M1);
        checks++;
        if (trapped || memcmp(file + 16 * vlenb, want, sizeof want) != 0) {
            printf("FAIL the spec's vmadot/vmadot1/vmadot2 example\n");
            failures++;
        }
        free(file);
    }

    /* Every form, signedness and fill, at fixed and at random legal registers. */
    const enum fill fills[] = {RANDOM, SIGNED_EXTREMES, ALL_255, MIN_ONLY};
    for (unsigned f = 0; f < 4; f++) {
        for (unsigned s = 0; s < 4; s++) {
            char name[32];
            snprintf(name, sizeof name, "vmadot%s", SIGN_NAMES[s]);
            check_form(name, enc_base(3, s, 16, 4, 9), 16, 4, 9, s, 0, 0, fills[f]);
            check_form(name, enc_base(3, s, 0, 31, 2), 0, 31, 2, s, 0, 0, fills[f]);
            for (unsigned slide = 1; slide <= 3; slide++) {
                snprintf(name, sizeof name, "vmadot%u%s", slide, SIGN_NAMES[s]);
                check_form(name, enc_slide(slide, s, 16, 4, 9), 16, 4, 9, s, slide, 0, fills[f]);
                check_form(name, enc_slide(slide, s, 30, 28, 0), 30, 28, 0, s, slide, 0, fills[f]);
            }
            if (int4) {
                snprintf(name, sizeof name, "vmadot%s i4", SIGN_NAMES[s]);
                check_form(name, enc_base(2, s, 16, 4, 9), 16, 4, 9, s, 0, 1, fills[f]);
            }
        }
    }
    for (int t = 0; t < 200; t++) {
        unsigned vd = 2 * (rnd() % 16), vs1, vs2, s = rnd() % 4, slide = rnd() % 4;
        do {
            vs1 = slide ? 2 * (rnd() % 16) : rnd() % 32;
        } while (vs1 < vd + 2 && vd < vs1 + (slide ? 2 : 1));
        do {
            vs2 = rnd() % 32;
        } while (vs2 == vd || vs2 == vd + 1);
        uint32_t insn = slide ? enc_slide(slide, s, vd, vs1, vs2) : enc_base(3, s, vd, vs1, vs2);
        check_form("random registers", insn, vd, vs1, vs2, s, slide, 0, RANDOM);
    }

    /* Illegal encodings and states (spec 5.1.4, 5.2.4, 8.1, 8.2). */
    expect_illegal("vd odd", enc_base(3, 3, 16, 4, 9) | 1u << 7, E8M1);
    expect_illegal("vd+1 is vs2", enc_base(3, 3, 16, 4, 17), E8M1);
    expect_illegal("vd is vs1", enc_base(3, 3, 16, 16, 9), E8M1);
    expect_illegal("vs1 is vd+1", enc_base(3, 3, 16, 17, 9), E8M1);
    expect_illegal("slide: vs1 pair is the vd pair", enc_slide(1, 3, 16, 16, 9), E8M1);
    expect_illegal("slide: vd odd", enc_slide(2, 3, 16, 4, 9) | 1u << 7, E8M1);
    expect_illegal("slide = 4 (reserved)", enc_slide(3, 3, 16, 4, 9) | 1u << 14, E8M1);
    expect_illegal("base funct3 1xx (reserved)", enc_base(3, 3, 16, 4, 9) | 4u << 12, E8M1);
    expect_illegal("data type 00 (reserved)", enc_base(0, 3, 16, 4, 9), E8M1);
    expect_illegal("data type 01 (reserved)", enc_base(1, 3, 16, 4, 9), E8M1);
    expect_illegal("slide form with int4", enc_slide(1, 3, 16, 4, 9) & ~(1u << 29), E8M1);
    expect_illegal("bit 25 clear", enc_base(3, 3, 16, 4, 9) & ~(1u << 25), E8M1);
    expect_illegal("LMUL = 2", enc_base(3, 3, 16, 4, 9), E8M2);
    expect_illegal("vill set", enc_base(3, 3, 16, 4, 9), VILL);
    if (!int4) {
        expect_illegal("int4 without xsmtvdotii", enc_base(2, 3, 16, 4, 9), E8M1);
    }

    printf("%s: %d of %d xsmtvdot checks passed at VLEN %u%s\n", failures ? "FAIL" : "ok",
           checks - failures, checks, vlenb * 8, int4 ? " (with int4 tiles)" : "");
    return failures ? 1 : 0;
}
