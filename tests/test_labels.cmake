# Labels per test (ctest -L / -LE). Each test executable gives its tests a base label (aviary_add_test LABELS:
# unit, cuda or gui); this file, read by ctest after the discovered tests of each executable, adds:
#   golden  the test compares against values an independent implementation produced (the official `rwkv` package,
#           HF transformers, torchaudio, sklearn, numpy / float64 references: fixtures made by tools/make_*.py)
#   slow    the test took 3 s or more in a full `ctest -j2` run on a 2-core VM (ctest's cost data,
#           build/release/Testing/Temporary/CTestCostData.txt, 2026-12-06, Intel Xeon model 207); a new test that
#           takes that long is added here
# So `ctest -L golden` runs the reference comparisons and `ctest -LE slow` the quick part of the suite.
# A pattern is a regular expression on the full test name (parameterised tests: Prefix/Suite.Name/N); keep every
# pattern matching a test when renaming (ctest -N -L golden lists what a label selects).
set(AVIARY_GOLDEN_TESTS
  "^(Official/)?ModelGolden\\." "^ModelConfigGolden\\." "^ModelGoldenStateDict\\."
  "^CpuEngineGolden\\." "^CpuEnginePrefill\\.MatchesTheOfficialSequenceMode$"
  "^PthReader\\.AllDtypesMatchOfficialSafetensorsAndManifest$" "^PthWriter\\.ReproducesTorchVerifiedFixtureByteForByte$"
  "^SafetensorsWriter\\.PthToSafetensorsForOfficialReader$"
  "^TokenizerWorld\\.(EncodeMatchesOfficial|DecodeMatchesOfficialAndRoundTrips)$"
  "^SamplerLogits\\.DistributionMatchesReference$" "^TrainData\\.BinidxBytesFollowTheOfficialLayout$"
  "^ConfigFlops\\.SequenceFlopsPerTokenOfTheOfficialShape$"
  "^MusicGenerate\\.EqualsTheOfficialLoopWithTheSameSeed$"
  "^KaldiFbank\\.MatchesTorchaudio$" "^LogMel\\.(SlaneyFiltersMatchReference|MatchesNumpyReference)$"
  "^Metrics\\.MatchSklearnWithTies$" "^BiWkv\\.(AutogradPathMatchesFloat64Numpy|ReferenceMatchesFloat64Numpy)$"
  "^VisionClip\\.HiddenStatesMatchHuggingFace$" "^VisionImage\\.ClipPreprocessMatchesHuggingFace$"
  "^VisionPrompt\\.TokensMatchTheOfficialTokenizerTurnByTurn$")
set(AVIARY_SLOW_TESTS
  "^Cli\\.BadFilesFailWithOneLineAndNoPartialOutput$"
  "^Cli\\.BadUsageExitsTwo$"
  "^Cli\\.BenchJsonKeysAndTheCheckpointsPrecision$"
  "^Cli\\.ChatKeepsStateAcrossTurnsAndSavesIt$"
  "^Cli\\.ChatRefusesAnotherModelsStateAndContinues$"
  "^Cli\\.ConvertRoundTripKeepsLogits$"
  "^Cli\\.ConvertToPthAndBackKeepsLogitsByteIdentical$"
  "^Cli\\.GenerateAndChatPickTheTokenizerByVocabularySize$"
  "^Cli\\.HelpEverywhere$"
  "^CliAudio\\.TagUsageAndBadFiles$"
  "^CliAudio\\.TrainEvalAndExactResume$"
  "^CliMusic\\.BadInputIsAOneLineError$"
  "^CliMusic\\.EvalMusicLossWritesCsvPngAndOverlays$"
  "^CliMusic\\.MissingToolsAreAClearError$"
  "^CliMusic\\.TrainMusicFromAbcWithAConfig$"
  "^CliResearch\\.BadListsAreUsageErrors$"
  "^CliTrain\\.AblationsFreezeExactlyTheDataDependentLoras$"
  "^CliTrain\\.BadInputIsOneErrorLine$"
  "^CliTrain\\.DataBuildTrainEvalInfo$"
  "^CliTrain\\.KilledRunResumesToTheSameWeights$"
  "^CliTrain\\.PrecisionIsAcceptedReportedOrRejected$"
  "^CliTrainFinetune\\.LoraExportsMergedOfficialWeights$"
  "^CliTrainFinetune\\.StateTuningSavesOfficialTimeState$"
  "^CliTrainParallel\\.NprocTwoEqualsOneProcessWithDoubleBatch$"
  "^CliTrainParallel\\.TorchrunStyleEnvironment$"
  "^CliVision\\.BadInputIsOneErrorLine$"
  "^CliVision\\.StageOneTrainsOnlyTheProjectorAndEvalScores$"
  "^CliVision\\.VqaAnswersForEveryKindOfImage$"
  "^CliVision\\.VqaStatsIsOneConsistentJsonLine$"
  "^CpuEngineMusic\\.Int8KeepsTop1OnTheMusicValidationSet$"
  "^CpuEngineMusic\\.PrefillPathsKeepTop1OnTheMusicValidationSet$"
  "^KillResume\\.ThreeKillsPerTrainCommandRecoverBitExact$"
  "^Mqar\\.TrainsEveryArchitecture$"
  "^SamplerLogits\\.DistributionMatchesReference$"
  "^StudioGui\\.BadScriptExitsWithOneErrorLine$"
  "^StudioGui\\.EveryPanelUnderXvfb$"
  "^StudioGui\\.ExpectErrorAndExpectOutputFailWhenNothingMatches$"
  "^StudioGui\\.WorkerErrorsShowABannerAndTheStudioKeepsWorking$"
  "^TrainLora\\.ResumeIsBitExact$"
  "^TrainState\\.TunesOnlyTheInitialStateAndReloads$"
  "^Trainer\\.FailedCheckpointWriteKeepsTheLastGoodOne$"
  "^Trainer\\.KeepsLastNPlusBest$"
  "^Trainer\\.ResumeAfterACrashIsBitExact$"
  "^Trainer\\.TwoLayerModelOverfitsATinyCorpus$"
  "^Versions/CpuEngineVersion\\.Bf16AndInt8StayCloseToFp32/5$"
  "^Versions/CpuEngineVersion\\.Bf16AndInt8StayCloseToFp32/6$"
  "^VisionTrain\\.StopAndResumeIsBitExact$"
  "^VisionTrain\\.VitPretrainingOnPatchLabels$")

# Sets the labels of every test in the list variable `tests_var` (gtest_discover_tests' <target>_TESTS).
function(aviary_label_tests tests_var base_labels)
  foreach(test IN LISTS ${tests_var})
    set(labels ${base_labels})
    foreach(kind golden slow)
      string(TOUPPER "${kind}" upper)
      foreach(pattern IN LISTS AVIARY_${upper}_TESTS)
        if(test MATCHES "${pattern}")
          list(APPEND labels ${kind})
          break()
        endif()
      endforeach()
    endforeach()
    set_tests_properties("${test}" PROPERTIES LABELS "${labels}")
  endforeach()
endfunction()
