// aviary::audio public API in one include: sound input, front ends, AudioRWKV, AudioSet readers, metrics,
// training and tagging (DESIGN.md "audio"; ../shared/reference/multimodal_spec.md part B).
#pragma once
#include "aviary/audio/audio_rwkv.h"
#include "aviary/audio/audio_train.h"
#include "aviary/audio/audioset.h"
#include "aviary/audio/bi_wkv.h"
#include "aviary/audio/front_end.h"
#include "aviary/audio/metrics.h"
#include "aviary/audio/q_shift.h"
#include "aviary/audio/sound_file.h"
#include "aviary/audio/tagger.h"
