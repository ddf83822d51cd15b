// SPDX-License-Identifier: MIT
/*
** tk_common.c: what the verbs of cm-tokenize share (see tk.h): the default thread count, the
** progress mode, the output file, and loading the tokenizer with the exit status of its fault.
*/
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tokenize/tk.h"

int tk_default_threads(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
}

int tk_progress_mode(const Cli *c)
{
    return c->quiet && c->progress < 0 ? 0 : c->progress;
}

int tk_open_output(const char *path, int binary, int *status)
{
    if (!path || !strcmp(path, "-")) {
        if (binary && isatty(1)) {
            error(
                "refusing to write a binary token stream to a terminal (use -o FILE, a pipe, or --jsonl)");
            *status = CM_EUSAGE;
            return -1;
        }
        return 1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        error("%s: cannot create: %s", path, strerror(errno));
        *status = CM_EIO;
    }
    return fd;
}

int tk_close_output(int fd, const char *path)
{
    if (fd > 1 && close(fd) != 0) {
        error("%s: cannot write: %s", path, strerror(errno));
        return CM_EIO;
    }
    return CM_OK;
}

Bpe *tk_load_tokenizer(const char *path, int *status)
{
    char err[512];
    BpeLoadErr kind;
    Bpe *bpe = bpe_load_file_kind(path, err, sizeof err, &kind);
    if (!bpe) {
        error("%s", err);
        *status = kind == BPE_LOAD_IO ? CM_EIO : CM_EFORMAT;
    }
    return bpe;
}
