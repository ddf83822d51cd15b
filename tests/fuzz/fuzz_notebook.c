// SPDX-License-Identifier: MIT
/*
** fuzz_notebook.c: libFuzzer target for cm-ingest's notebook-to-Python conversion
** (ingest/ingest.h notebook_to_py).
** fuzz-needs: ingest
**
** Input: a candidate .ipynb. Properties: a conversion that succeeds returns a cell count
** >= 0 and appends valid UTF-8 text (cm-ingest writes it as a record's content); a failure
** leaves a reason in err and may not have appended a NUL byte.
*/
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "ingest/ingest.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size ? size : 1);
    memcpy(json, data, size);
    Buf out = { 0 };
    char err[256] = "";
    int cells = notebook_to_py(json, size, &out, err, sizeof err);
    if (cells >= 0) {
        FUZZ_ASSERT(utf8_valid_prefix((const unsigned char *)out.buf, out.len) == out.len);
    } else {
        FUZZ_ASSERT(cells == -1 && err[0] != 0);
    }
    buf_free(&out);
    free(json);
    return 0;
}

#ifdef FUZZ_SEEDS
int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const char *d = argv[1];
    seed_str(
        d, "v4",
        "{\"nbformat\":4,\"nbformat_minor\":5,\"metadata\":{\"kernelspec\":{\"name\":"
        "\"python3\",\"language\":\"python\"},\"language_info\":{\"name\":\"python\"}},"
        "\"cells\":[{\"cell_type\":\"markdown\",\"metadata\":{},\"source\":[\"# Title\"]},"
        "{\"cell_type\":\"code\",\"metadata\":{},\"execution_count\":1,\"outputs\":[],"
        "\"source\":[\"%matplotlib inline\\n\",\"import pandas as pd\\n\",\"df = pd.DataFrame()\"]},"
        "{\"cell_type\":\"code\",\"metadata\":{},\"outputs\":[],\"source\":\"!pip install x\\nx = !ls\\n?df\"},"
        "{\"cell_type\":\"code\",\"metadata\":{},\"outputs\":[],\"source\":[\"%%time\\n\",\"sum(range(9))\"]},"
        "{\"cell_type\":\"code\",\"metadata\":{},\"outputs\":[],\"source\":[\"%%bash\\n\",\"ls -l\"]}]}");
    seed_str(d, "v3",
             "{\"nbformat\":3,\"metadata\":{\"language\":\"python\"},\"worksheets\":[{\"cells\":["
             "{\"cell_type\":\"code\",\"language\":\"python\",\"input\":[\"import numpy as np\\n\","
             "\"np.zeros(3)\"],\"outputs\":[]},{\"cell_type\":\"heading\",\"source\":[\"h\"]}]}]}");
    seed_str(d, "r-kernel",
             "{\"nbformat\":4,\"metadata\":{\"kernelspec\":{\"name\":\"ir\",\"language\":\"R\"}},"
             "\"cells\":[{\"cell_type\":\"code\",\"source\":\"x <- 1\",\"outputs\":[]}]}");
    seed_str(d, "no-cells", "{\"nbformat\":4,\"metadata\":{}}");
    seed_str(d, "unicode",
             "{\"nbformat\":4,\"metadata\":{},\"cells\":[{\"cell_type\":\"code\","
             "\"source\":[\"s = '\\u00e9\\ud83d\\ude00'\\r\\n\",\"x?\"]}]}");
    return 0;
}
#endif
