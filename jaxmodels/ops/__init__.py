"""Pure functional ops: functions of arrays and parameter dicts, with no hidden state."""

from jaxmodels.ops.conv import conv1d, conv2d
from jaxmodels.ops.basic import check_token_ids, dense, dropout, embed, flatten, relu
from jaxmodels.ops.losses import accuracy, check_labels, softmax_cross_entropy
from jaxmodels.ops.pool import avg_pool, max_pool
from jaxmodels.ops.attention import (
    additive_attention,
    dot_product_attention,
    init_additive_attention,
    init_multi_head_attention,
    multi_head_attention,
    padding_mask,
    self_attention,
)
from jaxmodels.ops.recurrent import (
    bidirectional,
    gru,
    init_gru,
    init_lstm,
    init_simple_rnn,
    lstm,
    simple_rnn,
)
