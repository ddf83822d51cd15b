// SPDX-License-Identifier: MIT
/*
** plot.c: the plot verb: an SVG line chart of the training loss and the valid loss against
** the step, from a --log file of cm-train (or stdin). The chart is written whole or not at all
** (AtomicFile), or to stdout with -o -.
*/
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"            /* defines: error, Buf, xrealloc, exit codes */
#include "io.h"              /* defines: Out, LineReader */
#include "json.h"            /* defines: json_parse_object, json_get */
#include "atomic.h"          /* defines: atomic_write_file, cm_stopping */
#include "trainer/options.h" /* defines: TrainerOpts, opts_parse, TOPT_* */
#include "trainer/verbs.h"   /* defines: verb_plot */

static const CliOpt plot_opts[] = {
    { "log", 0, "FILE", NULL, "the JSONL metrics of cm-train --log ('-': stdin)", TOPT_LOG },
    { "output", 'o', "OUT.svg", NULL, "the chart ('-': stdout)", 'o' },
    { 0 }
};

static const CliSpec plot_spec = {
    "cm-train",
    "plot",
    "--log FILE -o OUT.svg",
    "SVG line chart of the train loss and (where logged) the valid loss against the step.",
    "Memory: about 100 bytes per logged step (its points and their SVG text); the log is read\n"
    "line by line, lines of up to 1 MiB. A malformed line is reported and skipped (exit 1,\n"
    "the chart is still written).\n" TRAINER_EXIT_NOTE,
    plot_opts,
    NULL
};

typedef struct {
    double *step, *loss, *valid; /* per logged step; NAN where a value is missing */
    size_t n, cap;
} Curves;

/*
** Value of numeric field `key` of a parsed object, or NAN.
*/
static double json_num(const JsonObj *j, const char *key)
{
    const JsonField *f = json_get(j, key);
    return f && f->type == JSON_NUMBER ? strtod(f->raw, NULL) : NAN;
}

/*
** Read the steps of the log at path into cv. CM_OK, CM_EDATA (malformed lines, reported and
** skipped), CM_EIO, or CM_EINTR (stopped by a signal).
*/
static int plot_read(const char *path, Curves *cv)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY);
    if (fd < 0) return error("cannot open log '%s': %s", path, strerror(errno)), CM_EIO;
    LineReader lr;
    lr_init(&lr, fd, fd ? path : "stdin", 1 << 20);
    JsonObj j = { 0 };
    char *line;
    size_t len;
    int r, rc = CM_OK;
    while (!cm_stopping() && (r = lr_next(&lr, &line, &len)) != 0) {
        if (r < 0) {
            rc = CM_EDATA;
            continue;
        }
        if (len == 0) continue;
        if (json_parse_object(&j, line, len) != 0) {
            error("%s: line %llu: byte %zu: %s", lr.name, (unsigned long long)lr.lineno, j.err_pos,
                  j.err);
            rc = CM_EDATA;
            continue;
        }
        double st = json_num(&j, "step");
        if (isnan(st)) continue;
        if (cv->n == cv->cap) {
            cv->cap = cv->cap ? 2 * cv->cap : 256;
            cv->step = xrealloc(cv->step, cv->cap * sizeof *cv->step);
            cv->loss = xrealloc(cv->loss, cv->cap * sizeof *cv->loss);
            cv->valid = xrealloc(cv->valid, cv->cap * sizeof *cv->valid);
        }
        cv->step[cv->n] = st;
        cv->loss[cv->n] = json_num(&j, "loss");
        cv->valid[cv->n] = json_num(&j, "valid_loss");
        cv->n++;
    }
    if (lr.err) rc = CM_EIO;
    if (cm_stopping()) rc = CM_EINTR;
    json_obj_free(&j);
    lr_free(&lr);
    if (fd > 0) close(fd);
    return rc;
}

/*
** Append one SVG polyline of (x[i], y[i]) (NAN y skipped) mapped into the plot box.
*/
static void svg_line(Buf *s, const double *x, const double *y, size_t n, double x0, double x1,
                     double y0, double y1, const char *color, int dots)
{
    buf_addf(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (size_t i = 0; i < n; i++) {
        if (isnan(y[i])) continue;
        double px = 60 + 700 * (x[i] - x0) / (x1 - x0 ? x1 - x0 : 1);
        double py = 420 - 380 * (y[i] - y0) / (y1 - y0 ? y1 - y0 : 1);
        buf_addf(s, "%.1f,%.1f ", px, py);
    }
    buf_adds(s, "\"/>\n");
    if (dots)
        for (size_t i = 0; i < n; i++) {
            if (isnan(y[i])) continue;
            double px = 60 + 700 * (x[i] - x0) / (x1 - x0 ? x1 - x0 : 1);
            double py = 420 - 380 * (y[i] - y0) / (y1 - y0 ? y1 - y0 : 1);
            buf_addf(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px, py, color);
        }
}

/*
** The chart of cv (n > 0) as SVG text in s.
*/
static void plot_svg(const Curves *cv, Buf *s)
{
    size_t n = cv->n;
    const double *xs = cv->step, *ys = cv->loss, *vs = cv->valid;
    double x0 = xs[0], x1 = xs[0], y0 = INFINITY, y1 = -INFINITY;
    int have_v = 0;
    for (size_t i = 0; i < n; i++) {
        if (xs[i] < x0) x0 = xs[i];
        if (xs[i] > x1) x1 = xs[i];
        double c[2] = { ys[i], vs[i] };
        for (int k = 0; k < 2; k++)
            if (!isnan(c[k])) {
                if (c[k] < y0) y0 = c[k];
                if (c[k] > y1) y1 = c[k];
            }
        if (!isnan(vs[i])) have_v = 1;
    }
    if (!isfinite(y0)) {
        y0 = 0;
        y1 = 1;
    }
    if (y1 - y0 < 1e-9) {
        y0 -= 0.5;
        y1 += 0.5;
    }
    buf_adds(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"480\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n"
        "<rect width=\"800\" height=\"480\" fill=\"white\"/>\n"
        "<text x=\"400\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">cm-train loss</text>\n"
        "<line x1=\"60\" y1=\"420\" x2=\"760\" y2=\"420\" stroke=\"black\"/>\n"
        "<line x1=\"60\" y1=\"40\" x2=\"60\" y2=\"420\" stroke=\"black\"/>\n");
    for (int k = 0; k <= 5; k++) {
        double yv = y0 + (y1 - y0) * k / 5, py = 420 - 380.0 * k / 5;
        double xv = x0 + (x1 - x0) * k / 5, px = 60 + 700.0 * k / 5;
        buf_addf(s,
                 "<line x1=\"60\" y1=\"%.1f\" x2=\"760\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                 "<text x=\"54\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n"
                 "<text x=\"%.1f\" y=\"438\" text-anchor=\"middle\">%.0f</text>\n",
                 py, py, py + 4, yv, px, xv);
    }
    buf_adds(s, "<text x=\"410\" y=\"465\" text-anchor=\"middle\">step</text>\n");
    svg_line(s, xs, ys, n, x0, x1, y0, y1, "#1f77b4", 0);
    if (have_v) svg_line(s, xs, vs, n, x0, x1, y0, y1, "#ff7f0e", 1);
    buf_adds(
        s,
        "<rect x=\"600\" y=\"48\" width=\"150\" height=\"46\" fill=\"white\" stroke=\"#999\"/>\n"
        "<line x1=\"610\" y1=\"63\" x2=\"640\" y2=\"63\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n"
        "<text x=\"648\" y=\"67\">train loss</text>\n"
        "<line x1=\"610\" y1=\"83\" x2=\"640\" y2=\"83\" stroke=\"#ff7f0e\" stroke-width=\"2\"/>\n"
        "<text x=\"648\" y=\"87\">valid loss</text>\n</svg>\n");
}

/*
** Write the chart: to stdout for "-", in place for a device or FIFO, else atomically. 0 or
** CM_EIO (a write error on stdout ends the process through Out).
*/
static int plot_write(const char *path, const Buf *s)
{
    return atomic_write_output(path, s->buf, s->len) == 0 ? CM_OK : CM_EIO;
}

/*
** The plot verb.
*/
int verb_plot(int argc, char **argv)
{
    TrainerOpts o;
    int rc;
    if (!opts_parse(&o, &plot_spec, argc, argv, &rc)) return rc;
    if (!o.log) return cli_spec_usage_error(&plot_spec, "plot needs --log FILE");
    if (!o.output) return cli_spec_usage_error(&plot_spec, "plot needs -o OUT.svg");
    Curves cv = { 0 };
    rc = plot_read(o.log, &cv);
    if (rc == CM_EINTR) {
        error("plot: interrupted, nothing written");
    } else if (cv.n == 0) {
        error("%s: no steps to plot", o.log);
        if (rc == CM_OK) rc = CM_EDATA;
    } else {
        Buf s = { 0 };
        plot_svg(&cv, &s);
        int w = plot_write(o.output, &s);
        if (w != CM_OK) rc = w;
        buf_free(&s);
    }
    free(cv.step);
    free(cv.loss);
    free(cv.valid);
    return rc;
}
