// SPDX-License-Identifier: MIT
/*
** tk_instruct.c: `cm-tokenize encode --template`: an instruction record (Alpaca's
** instruction/input/output, instruction/output/system, prompt/completion, or fields named with
** --field ROLE=NAME) -> the template's prompt and response text, and the metadata of the
** example (docs/FORMATS.md "Instruction template").
**
** Each role takes the first of its field names the record has: instruction from `instruction`
** else `prompt`, input from `input`, output from `output` else `completion`, system from
** `system`; --field ROLE=NAME names the one field of a role. A null value counts as absent.
** A record without an instruction or an output, with an empty output, or with a role's field
** not a string, is a bad record.
*/
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "tokenize/tk.h"

static const char *const def_instruction[] = { "instruction", "prompt", NULL };
static const char *const def_input[] = { "input", NULL };
static const char *const def_output[] = { "output", "completion", NULL };
static const char *const def_system[] = { "system", NULL };
const char *const *const tk_field_defaults[TPL_NFIELDS] = { def_instruction, def_input, def_output,
                                                            def_system };

/*
** "'a' nor 'b'" for messages: the names role r is looked up under.
*/
static void role_names(const TkInput *in, int r, char *out, size_t n)
{
    if (in->o->field[r]) {
        snprintf(out, n, "'%s'", in->o->field[r]);
        return;
    }
    const char *const *d = tk_field_defaults[r];
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; d[i] && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s'%s'", i ? " nor " : "", d[i]);
}

/*
** Find the field of role r in r's record: its value decoded into in->val[role], *v set (s NULL:
** absent). 0, or -1 (not a string) with why and *byte.
*/
static int take_role(TkInput *in, const Record *rec, int role, Str *v, char *why, size_t whylen,
                     size_t *byte)
{
    const char *one[2] = { in->o->field[role], NULL };
    const char *const *names = in->o->field[role] ? one : tk_field_defaults[role];
    v->s = NULL;
    v->n = 0;
    in->used[role] = NULL;
    for (int i = 0; names[i]; i++) {
        const JsonField *f = json_get(&rec->obj, names[i]);
        if (!f) continue;
        in->used[role] = names[i];
        if (f->type == JSON_NULL) return 0;
        if (f->type != JSON_STRING) {
            snprintf(why, whylen, "field '%s' (the %s) is not a string", names[i],
                     template_role_name(role));
            *byte = (size_t)(f->raw - rec->line);
            return -1;
        }
        Buf *b = &in->val[role];
        buf_reset(b);
        if (f->escaped)
            json_decode_string(f->raw, f->rawlen, b);
        else
            buf_add(b, f->raw, f->rawlen);
        if (!b->buf) buf_grow(b, 1);
        v->s = b->buf;
        v->n = b->len;
        *byte = (size_t)(f->raw - rec->line);
        return 0;
    }
    return 0;
}

int tk_instruct_render(TkInput *in, const Record *r, char *why, size_t whylen, size_t *byte)
{
    Str v[TPL_NFIELDS];
    size_t at[TPL_NFIELDS] = { 0 };
    char names[200];
    *byte = 0;
    for (int role = 0; role < TPL_NFIELDS; role++) {
        if (take_role(in, r, role, &v[role], why, whylen, byte)) return -1;
        at[role] = *byte;
    }
    *byte = 0;
    if (!v[TPL_INSTRUCTION].s || !v[TPL_OUTPUT].s) {
        int role = !v[TPL_INSTRUCTION].s ? TPL_INSTRUCTION : TPL_OUTPUT;
        role_names(in, role, names, sizeof names);
        snprintf(why, whylen, "no %s: no field %s (name it with --field %s=NAME)",
                 template_role_name(role), names, template_role_name(role));
        return -1;
    }
    if (!v[TPL_OUTPUT].n) {
        snprintf(why, whylen, "the output (field '%s') is empty", in->used[TPL_OUTPUT]);
        *byte = at[TPL_OUTPUT] ? at[TPL_OUTPUT] - 1 : 0; /* its opening quote */
        return -1;
    }
    buf_reset(&in->prompt);
    buf_reset(&in->response);
    if (template_render(in->o->tpl, v, &in->prompt, &in->response, why, whylen)) return -1;
    return 0;
}

/*
** Is field f one the metadata of an instruction record leaves out? Those the template rendered
** (a `system` field of a template without {system} stays), and the names of our own.
*/
int tk_instruct_drops(const TkInput *in, const JsonField *f)
{
    static const char *const ours[] = { "content", "prompt",       "response",
                                        "n_bytes", "content_hash", NULL };
    for (int i = 0; ours[i]; i++)
        if (strlen(ours[i]) == f->klen && !memcmp(ours[i], f->key, f->klen)) return 1;
    for (int r = 0; r < TPL_NFIELDS; r++)
        if (in->used[r] && (in->tpl_uses >> r & 1) && strlen(in->used[r]) == f->klen &&
            !memcmp(in->used[r], f->key, f->klen))
            return 1;
    return 0;
}
