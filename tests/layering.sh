#!/bin/sh
# The layering rule: nothing under schedulers/ includes a private header of
# substrate/ or ptm/ (design.md).  Modules use include/lwc/ only.
top=${top_srcdir:-.}
bad=$(grep -rnE '#[[:space:]]*include[[:space:]]*[<"][^">]*(substrate|ptm)/' "$top/schedulers" 2>/dev/null)
if [ -n "$bad" ]; then
    echo "layering: a module includes a private header:"
    echo "$bad"
    exit 1
fi
n=$(find "$top/schedulers" -name '*.[ch]' 2>/dev/null | wc -l)
echo "layering: $n module files include only public headers"
